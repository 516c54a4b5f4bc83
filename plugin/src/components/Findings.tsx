import { ReactElement } from 'react';

/** What stood out in a query's result, one line each. */
export function Findings({ findings }: { findings: string[] }): ReactElement | null {
  if (findings.length === 0) return null;
  return (
    <ul className="persai-findings" style={{ margin: '4px 0', paddingLeft: 20 }}>
      {findings.map((finding, index) => (
        <li key={index}>{finding}</li>
      ))}
    </ul>
  );
}
