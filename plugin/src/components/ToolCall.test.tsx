import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { recordedJson } from '../__fixtures__/recorded';
import { Job } from '../api/types';
import { viewOfJob } from '../model/investigation';
import { formatDuration, ToolCall } from './ToolCall';

describe('ToolCall', () => {
  it('shows the tool, its arguments, its duration and, asked, what the model saw', async () => {
    const job = recordedJson<Job>('job.json');
    const call = viewOfJob(job).calls[0]!;
    render(<ToolCall call={call} />);
    expect(screen.getByText('execute_range_query')).toBeInTheDocument();
    expect(screen.getByText(String(job.steps[0]!.arguments.query))).toBeInTheDocument();
    expect(screen.getByText('2h')).toBeInTheDocument();
    expect(screen.getByText(formatDuration(job.steps[0]!.duration_ms!))).toBeInTheDocument();
    expect(screen.queryByText(/Stand out/)).toBeNull();
    await userEvent.click(screen.getByText('what the model saw'));
    expect(screen.getByText(/checkout-worker/)).toBeInTheDocument();
  });

  it('says durations as a person reads them', () => {
    expect(formatDuration(879.4)).toBe('879 ms');
    expect(formatDuration(1234)).toBe('1.2 s');
    expect(formatDuration(undefined)).toBe('');
  });
});
