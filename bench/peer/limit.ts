// The limit of the benchmark: the same tools/list handler as the peer,
// with no authentication at all: what the runtime itself costs per request.
import { answerToolsList } from './mcp.ts';

interface Env {
  TOOLS_LIST_BODY: string;
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return answerToolsList(request, env.TOOLS_LIST_BODY);
  },
};
