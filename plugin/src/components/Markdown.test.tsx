import { render } from '@testing-library/react';
import { isPersesLink, Markdown } from './Markdown';

describe('Markdown', () => {
  it('renders the answer without raw HTML, remote images or links away from Perses', () => {
    const { container } = render(
      <Markdown
        text={[
          'The culprit is **checkout-worker** (`p99` 3.3 s).',
          '',
          '<script>alert(1)</script><img src=x onerror=alert(2)>',
          '',
          '![chart](https://evil.example/track.png)',
          '',
          '[a dashboard](/projects/shop/dashboards/checkout) and [elsewhere](https://evil.example/)',
          '',
          '- one',
          '- two',
        ].join('\n')}
      />
    );
    expect(container.querySelector('strong')?.textContent).toBe('checkout-worker');
    expect(container.querySelector('code')?.textContent).toBe('p99');
    expect(container.querySelector('script')).toBeNull();
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain('<script>alert(1)</script>');
    expect(container.textContent).toContain('[image: chart]');
    const links = [...container.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    expect(links).toEqual(['/projects/shop/dashboards/checkout']);
    expect(container.textContent).toContain('elsewhere (https://evil.example/)');
    expect(container.querySelectorAll('li')).toHaveLength(2);
  });

  it('links only to this origin or its paths', () => {
    expect(isPersesLink('/explore', 'https://perses.example')).toBe(true);
    expect(isPersesLink('//evil.example/x', 'https://perses.example')).toBe(false);
    expect(isPersesLink('https://perses.example/projects', 'https://perses.example')).toBe(true);
    expect(isPersesLink('javascript:alert(1)', 'https://perses.example')).toBe(false);
    expect(isPersesLink('https://evil.example/', 'https://perses.example')).toBe(false);
  });
});
