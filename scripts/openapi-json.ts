// Prints the OpenAPI document (the same one GET /openapi.json serves) without starting a server:
// `npx tsx scripts/openapi-json.ts > openapi.json`. The lint step and the generated-client test use it.
import { createApp } from '../src/app';
import { OPENAPI_DOCUMENT } from '../src/http/openapi';

const app = createApp(() => {
  throw new Error('the document needs no dependencies');
});
process.stdout.write(JSON.stringify(app.getOpenAPI31Document(OPENAPI_DOCUMENT), null, 2) + '\n');
