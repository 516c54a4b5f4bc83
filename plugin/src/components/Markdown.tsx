// The answer's Markdown, rendered without any raw HTML: every token becomes a React element, so
// nothing the model wrote can add markup. Images are shown as their description (no remote
// fetches); links are links only to Perses itself (a path on this host), text otherwise.

import { Box, Link, Typography } from '@mui/material';
import { marked, Token, Tokens } from 'marked';
import { ReactElement, ReactNode, useMemo } from 'react';

export function Markdown({ text }: { text: string }): ReactElement {
  const tokens = useMemo(() => marked.lexer(text, { gfm: true }), [text]);
  return (
    <Box className="persai-markdown" sx={{ '& p': { my: 1 }, '& pre': { overflowX: 'auto' } }}>
      {blocks(tokens)}
    </Box>
  );
}

/** Whether a link's target is Perses itself: a path on this host, or this very origin. */
export function isPersesLink(href: string, origin = currentOrigin()): boolean {
  if (href.startsWith('/') && !href.startsWith('//')) return true;
  try {
    const url = new URL(href);
    return origin !== undefined && url.origin === origin && (url.protocol === 'http:' || url.protocol === 'https:');
  } catch {
    return false;
  }
}

function currentOrigin(): string | undefined {
  return typeof window !== 'undefined' ? window.location.origin : undefined;
}

function blocks(tokens: Token[]): ReactNode[] {
  return tokens.map((token, index) => block(token, index));
}

function block(token: Token, key: number): ReactNode {
  switch (token.type) {
    case 'heading': {
      const t = token as Tokens.Heading;
      return (
        <Typography key={key} variant={t.depth <= 2 ? 'h6' : 'subtitle1'} component="p" fontWeight="bold">
          {inline(t.tokens)}
        </Typography>
      );
    }
    case 'paragraph':
      return <p key={key}>{inline((token as Tokens.Paragraph).tokens)}</p>;
    case 'text': {
      const t = token as Tokens.Text;
      return <p key={key}>{t.tokens ? inline(t.tokens) : t.text}</p>;
    }
    case 'code':
      return (
        <pre key={key}>
          <code>{(token as Tokens.Code).text}</code>
        </pre>
      );
    case 'blockquote':
      return <blockquote key={key}>{blocks((token as Tokens.Blockquote).tokens)}</blockquote>;
    case 'list': {
      const t = token as Tokens.List;
      const items = t.items.map((item, i) => <li key={i}>{listItem(item)}</li>);
      return t.ordered ? (
        <ol key={key} start={typeof t.start === 'number' ? t.start : undefined}>
          {items}
        </ol>
      ) : (
        <ul key={key}>{items}</ul>
      );
    }
    case 'table':
      return table(token as Tokens.Table, key);
    case 'hr':
      return <hr key={key} />;
    case 'space':
      return null;
    default:
      // raw HTML and whatever else: its text, as text
      return <p key={key}>{'text' in token ? String(token.text) : token.raw}</p>;
  }
}

function listItem(item: Tokens.ListItem): ReactNode {
  // a tight list's items hold text tokens: keep them inline
  return item.tokens.map((token, index) =>
    token.type === 'text' ? (
      <span key={index}>{inline((token as Tokens.Text).tokens ?? [token])}</span>
    ) : (
      block(token, index)
    )
  );
}

function table(token: Tokens.Table, key: number): ReactNode {
  return (
    <table key={key}>
      <thead>
        <tr>
          {token.header.map((cell, i) => (
            <th key={i}>{inline(cell.tokens)}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {token.rows.map((row, r) => (
          <tr key={r}>
            {row.map((cell, i) => (
              <td key={i}>{inline(cell.tokens)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function inline(tokens: Token[] | undefined): ReactNode[] {
  return (tokens ?? []).map((token, key) => inlineToken(token, key));
}

function inlineToken(token: Token, key: number): ReactNode {
  switch (token.type) {
    case 'strong':
      return <strong key={key}>{inline((token as Tokens.Strong).tokens)}</strong>;
    case 'em':
      return <em key={key}>{inline((token as Tokens.Em).tokens)}</em>;
    case 'del':
      return <del key={key}>{inline((token as Tokens.Del).tokens)}</del>;
    case 'codespan':
      return <code key={key}>{(token as Tokens.Codespan).text}</code>;
    case 'br':
      return <br key={key} />;
    case 'link': {
      const t = token as Tokens.Link;
      if (isPersesLink(t.href)) {
        return (
          <Link key={key} href={t.href}>
            {inline(t.tokens)}
          </Link>
        );
      }
      const label = t.text;
      return <span key={key}>{label === t.href ? label : `${label} (${t.href})`}</span>;
    }
    case 'image': {
      const t = token as Tokens.Image;
      return <span key={key}>{`[image: ${t.text || 'no description'}]`}</span>;
    }
    case 'text': {
      const t = token as Tokens.Text;
      return t.tokens ? <span key={key}>{inline(t.tokens)}</span> : <span key={key}>{decode(t.text)}</span>;
    }
    case 'escape':
      return <span key={key}>{(token as Tokens.Escape).text}</span>;
    default:
      // inline HTML and the rest: shown as the text it is
      return <span key={key}>{token.raw}</span>;
  }
}

/** marked escapes `&`, `<`, `>` and quotes in text tokens; React escapes again, so undo it. */
function decode(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}
