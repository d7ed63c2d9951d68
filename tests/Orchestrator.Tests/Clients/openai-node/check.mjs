// Drives Orchestrator's /v1/chat/completions with the official openai package, as a team would after changing its
// base URL: a plain call, a streamed one, and a tool call answered by the caller. Prints one JSON summary on stdout;
// Clients/OpenAiClientTests.cs starts the service, runs this and checks the summary. Any error exits non-zero.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.ORCHESTRATOR_BASE_URL, apiKey: process.env.ORCHESTRATOR_API_KEY, maxRetries: 0 });

const plain = await client.chat.completions.create({
  model: "auto",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello from node" }],
  temperature: 0.2,
  max_tokens: 50,
  user: "node-user",
});

const stream = await client.chat.completions.create({
  model: "latency-first",
  messages: [{ role: "user", content: "stream these few words" }],
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let chunks = 0;
let usage = null;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (choice?.delta?.content) streamed += choice.delta.content;
  if (choice?.finish_reason) finish = choice.finish_reason;
}

// The simulated model calls a tool when asked with "/call <name> <json>" and tools are offered.
const tools = [{
  type: "function",
  function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } },
}];
const question = { role: "user", content: 'What is the weather?\n/call get_weather {"city":"Oslo"}' };
const first = await client.chat.completions.create({ model: "auto", messages: [question], tools });
const call = first.choices[0].message.tool_calls?.[0];
const second = await client.chat.completions.create({
  model: "auto",
  tools,
  messages: [question, first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "sunny, 21C" }],
});

let error = null;
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
} catch (e) {
  error = { status: e.status, code: e.code, type: e.type, message: e.message };
}

console.log(JSON.stringify({
  plain: { text: plain.choices[0].message.content, finish: plain.choices[0].finish_reason, model: plain.model, totalTokens: plain.usage.total_tokens, id: plain.id },
  stream: { text: streamed, chunks, finish, completionTokens: usage?.completion_tokens ?? null },
  tools: {
    finish: first.choices[0].finish_reason,
    name: call?.function.name ?? null,
    arguments: call ? JSON.parse(call.function.arguments) : null,
    answer: second.choices[0].message.content,
  },
  error,
}));
