// The MCP side of the peer and of the limit worker: the same few lines in
// both, so the difference between them is what authentication costs.

/** What a small MCP handler does for tools/list: parse, check, answer. */
export async function answerToolsList(request: Request, body: string): Promise<Response> {
  if (request.method !== 'POST') return new Response(null, { status: 405 });
  let message: { method?: unknown };
  try {
    message = await request.json();
  } catch {
    return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }, { status: 400 });
  }
  if (message.method !== 'tools/list') {
    return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32601, message: 'Method not found' } }, { status: 404 });
  }
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}
