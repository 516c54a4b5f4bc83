// Drives PersAI's compatibility API exactly as the @inecas/persai Perses plugin does: its
// `Client` (src/api.ts) subclasses the llama-stack-client 0.2 SDK's APIClient, and its explorer
// (src/PersaiExplorer.tsx) rebuilds the chat from the SDK's Stream of turn chunks.
//
//   node driver.mjs '{"baseURL": "...", "datasourcePath": "...", "messages": ["..."],
//                     "cookie": "jwtPayload=...; ...", "deleteSession": false}'
//
// Prints one JSON object: the session id, the chat after each turn, the chunks received, what
// the SDK sent (method, URL, headers, body), what came over the wire for each stream, and the
// time range the plugin would chart each execute_range_query call over (`charts`).
//
// How the plugin surfaces trouble, per turn: `error` is what its `handleSubmit` catches (the
// SDK's request or stream failing), which it shows in its error Alert; `renderError` is what
// its chat reducer throws (for instance on a Llama Stack `{"error": ...}` frame, which the SDK
// 0.2 yields as a chunk; PersAI sends the reason of a failed turn as its last text instead). The plugin runs that reducer inside a React state updater
// (`setMessages((prev) => updateMessagesFromChunk(prev, chunk))`), so React throws it while
// rendering, outside `handleSubmit`'s try/catch: it reaches Perses's error boundary, which
// replaces the explorer with an alert of that error's message, and the stream is read to its end.
// The test harness copies this file next to the node_modules it installs, so that the imports
// below resolve the pinned SDK the way the plugin's bundler does.

import { APIClient } from "llama-stack-client/core";

const config = JSON.parse(process.argv[2]);
const requests = [];
const streams = [];

// The plugin's fetch: the browser's, with `credentials: "include"` so that the Perses cookies go
// along. Node has no cookie jar, so the cookies a browser would attach are added here; the
// request and the raw stream are recorded on the way.
async function pluginFetch(url, init) {
  const headers = { ...(init?.headers ?? {}) };
  if (config.cookie) headers.cookie = config.cookie;
  requests.push({
    method: init?.method ?? "GET",
    url: String(url),
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    body: init?.body ?? null,
  });
  const response = await fetch(url, { ...init, headers, credentials: "include" });
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith("text/event-stream") || !response.body) return response;
  const [forSdk, forRecord] = response.body.tee();
  const record = { status: response.status, contentType: type, text: "", gapsMs: [] };
  streams.push(record);
  record.done = (async () => {
    const decoder = new TextDecoder();
    let last = Date.now();
    for await (const bytes of forRecord) {
      const now = Date.now();
      record.gapsMs.push(now - last);
      last = now;
      record.text += decoder.decode(bytes, { stream: true });
    }
  })();
  return new Response(forSdk, { status: response.status, headers: response.headers });
}

// src/api.ts of the plugin, as JavaScript.
class Client extends APIClient {
  constructor(baseURL) {
    super({
      baseURL: baseURL,
      timeout: 30000 /* 30 seconds */,
      httpAgent: undefined,
      maxRetries: 3,
      fetch: pluginFetch,
    });
  }

  defaultQuery() {
    return undefined;
  }

  sessionCreate() {
    return this.post(`/session`);
  }

  sessionDelete(sessionId) {
    return this.delete(`/session/${sessionId}`);
  }

  turnCreate(sessionId, datasourcePath, message) {
    const params = new URLSearchParams({ datasource_path: datasourcePath });
    return this.post(`/session/${sessionId}/turn?${params}`, {
      body: { message: message },
      stream: true,
    });
  }
}

// src/PersaiExplorer.tsx of the plugin: how each chunk changes the chat.
function updateChunk(prevMessages, { delta, full }) {
  const updateMessage = (current) => (delta ? current + delta : full);
  const last = prevMessages[prevMessages.length - 1];
  if (last && last.role === "agent") {
    const updated = [...prevMessages];
    updated[updated.length - 1] = { ...last, content: updateMessage(last.content) };
    return updated;
  }
  return [...prevMessages, { role: "agent", content: updateMessage("") }];
}

function addToolResponse(prevMessages, toolCall, toolResponse) {
  const toolMessage = {
    role: "tool",
    content: toolResponse?.content,
    toolCall: {
      role: "tool",
      callId: toolCall.call_id,
      toolName: toolCall.tool_name,
      args: toolCall.arguments,
      result: toolResponse?.content,
    },
  };
  const index = prevMessages.findIndex((m) => m.toolCall?.callId === toolCall.call_id);
  if (index !== -1) {
    const updated = [...prevMessages];
    updated[index] = toolMessage;
    return updated;
  }
  return [...prevMessages, toolMessage];
}

function updateMessagesFromChunk(prevMessages, chunk) {
  const payload = chunk.event.payload;
  switch (payload.event_type) {
    case "step_progress":
      if (payload.delta.type === "text") return updateChunk(prevMessages, { delta: payload.delta.text });
      return prevMessages;
    case "step_complete":
      if (payload.step_details.step_type === "tool_execution") {
        const step = payload.step_details;
        return step.tool_calls.reduce(
          (messages, toolCall, index) => addToolResponse(messages, toolCall, step.tool_responses?.[index]),
          prevMessages,
        );
      }
      return prevMessages;
    case "turn_complete":
      if (payload.turn.output_message) {
        return updateChunk(prevMessages, { full: payload.turn.output_message.content });
      }
      return prevMessages;
    default:
      return prevMessages;
  }
}

// src/explore/persai-explorer/components/ToolCall.tsx of the plugin, `ToolCall`: the time range
// an execute_range_query call is charted over, as the plugin's code has it. It charts every such
// call, failed ones too (it never looks at the result; Messages.tsx renders every tool message
// with it). Its fallback names a `duration` that nothing there declares (the call's arguments
// are destructured into query, start and end only), so a call without both start and end throws
// a ReferenceError there, as it does here: nothing in this module declares `duration` either.
// PersAI always sends both; a chart with an `error` means it did not.
function chartTimeRange(toolCall) {
  const { query, start, end } = toolCall.args;
  let timeRange;
  if (start && end) {
    timeRange = {
      start: new Date(start),
      end: new Date(end),
    };
  } else {
    timeRange = { pastDuration: duration || "1h" };
  }
  return { query: query || "", timeRange };
}

function chart(message) {
  const drawn = { callId: message.toolCall.callId };
  try {
    const { query, timeRange } = chartTimeRange(message.toolCall);
    drawn.query = query;
    if ("pastDuration" in timeRange) {
      drawn.pastDuration = timeRange.pastDuration;
    } else {
      // epoch milliseconds, null for an Invalid Date
      drawn.startMs = Number.isNaN(timeRange.start.getTime()) ? null : timeRange.start.getTime();
      drawn.endMs = Number.isNaN(timeRange.end.getTime()) ? null : timeRange.end.getTime();
    }
  } catch (error) {
    drawn.error = describe(error);
  }
  return drawn;
}

function describe(error) {
  return { name: error?.constructor?.name ?? "Error", message: String(error?.message ?? error), status: error?.status ?? null };
}

async function main() {
  const client = new Client(config.baseURL);
  const result = { sessionId: null, turns: [], messages: [], error: null };
  try {
    const session = await client.sessionCreate();
    result.sessionId = session.session_id;
    for (const message of config.messages ?? []) {
      let messages = [...result.messages, { role: "user", content: message }];
      const turn = { chunks: [], error: null, renderError: null };
      result.turns.push(turn);
      try {
        const response = await client.turnCreate(result.sessionId, config.datasourcePath, message);
        for await (const chunk of response) {
          turn.chunks.push(chunk);
          if (turn.renderError) continue; // the explorer is gone: the error boundary shows instead
          try {
            messages = updateMessagesFromChunk(messages, chunk); // React runs it while rendering
          } catch (error) {
            turn.renderError = describe(error);
          }
        }
      } catch (error) {
        turn.error = describe(error); // the plugin's catch: setError(error.message), its Alert
      }
      result.messages = messages;
    }
    if (config.deleteSession) result.deleted = await client.sessionDelete(result.sessionId);
  } catch (error) {
    result.error = describe(error);
  }
  result.charts = result.messages
    .filter((m) => m.role === "tool" && m.toolCall?.toolName === "execute_range_query")
    .map(chart);
  await Promise.all(streams.map((s) => s.done));
  result.requests = requests;
  result.streams = streams.map(({ done, ...rest }) => rest);
  process.stdout.write(JSON.stringify(result));
}

await main();
