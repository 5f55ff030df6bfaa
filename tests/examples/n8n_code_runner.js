// Run the JavaScript of an n8n Code node (v2, "run once for all items") outside n8n, for the tests.
//
// stdin: {"code": "...", "input": [items], "nodes": {"Node name": [items]}, "vars": {...},
//         "loop": {"feed": "Node name", "reply": item, "max": N}}   (loop is optional)
// stdout: {"output": [items]} or, with loop, {"output": [items], "iterations": n}
//
// Only what the workflows use is provided: $input.first()/all(), $('Node').first()/all(), $vars,
// $execution.id and this.helpers.getBinaryDataBuffer (binary "data" holds base64, as in n8n's
// default in-memory mode). Like n8n, the code is the body of an async function.
'use strict';

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;

async function runOnce(code, input, nodes, vars) {
  const $input = { first: () => input[0], last: () => input[input.length - 1], all: () => input };
  const $ = (name) => {
    if (!(name in nodes)) throw new Error(`Node '${name}' hasn't been executed`);
    const items = nodes[name];
    return { first: () => items[0], last: () => items[items.length - 1], all: () => items, isExecuted: true };
  };
  const helpers = {
    getBinaryDataBuffer: async (index, property) => Buffer.from(input[index].binary[property].data, 'base64'),
  };
  const fn = new AsyncFunction('$input', '$', '$vars', '$execution', code);
  const output = await fn.call({ helpers }, $input, $, Object.freeze({ ...vars }), { id: 'test-execution' });
  if (!Array.isArray(output)) throw new Error('a Code node must return an array of items');
  return output;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const nodes = { ...(request.nodes || {}) };
  const vars = request.vars || {};
  if (!request.loop) {
    const output = await runOnce(request.code, request.input || [], nodes, vars);
    process.stdout.write(JSON.stringify({ output }));
    return;
  }
  // A status/history loop: the node's output goes back through the Wait node (request.loop.feed)
  // while its outcome is 'wait'; the Lambda/HTTP node in between always answers request.loop.reply.
  const { feed, reply, max } = request.loop;
  let iterations = 0;
  let output;
  for (;;) {
    iterations += 1;
    output = await runOnce(request.code, [reply], nodes, vars);
    if (output.length !== 1 || output[0].json.outcome !== 'wait' || iterations >= max) break;
    nodes[feed] = output;
  }
  process.stdout.write(JSON.stringify({ output, iterations }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
