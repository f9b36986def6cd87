// GET /docs: the interactive API reference (Swagger UI), with its scripts served by this server —
// no CDN, so it works offline and for self-hosters without internet.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../http/env';
import { AppError } from '../../domain/errors';
import { declareRoute } from '../../http/route';

export const DOCS_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png'];

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Orbital relay API</title>
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });`;

const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:";

const text = (type: string, description: string) => ({ description, content: { [type]: { schema: z.string() } } });

/** The document itself and the page that renders it, served by plain handlers, declared here. */
function declare(app: OpenAPIHono<AppEnv>) {
  const docs = { public: true as const, tags: ['docs'] };
  declareRoute(app, {
    ...docs,
    method: 'get',
    path: '/openapi.json',
    operationId: 'docs.openapi',
    summary: 'This OpenAPI 3.1 document',
    responses: { 200: { description: 'the document', content: { 'application/json': { schema: z.object({}).passthrough() } } } },
  });
  declareRoute(app, { ...docs, method: 'get', path: '/docs', operationId: 'docs.page', summary: 'The interactive API reference (Swagger UI)', responses: { 200: text('text/html', 'the page') } });
  declareRoute(app, { ...docs, method: 'get', path: '/docs/init.js', operationId: 'docs.script', summary: "The page's start-up script", responses: { 200: text('text/javascript', 'the script') } });
  declareRoute(app, {
    ...docs,
    method: 'get',
    path: '/docs/assets/{file}',
    operationId: 'docs.asset',
    summary: 'Swagger UI files, served by this server (no CDN)',
    errors: ['NOT_FOUND'],
    request: { params: z.object({ file: z.enum(DOCS_FILES as [string, ...string[]]).openapi({ param: { name: 'file', in: 'path' } }) }) },
    responses: { 200: { description: 'the file', content: { '*/*': { schema: z.string().openapi({ format: 'binary' }) } } } },
  });
}

export function register(app: OpenAPIHono<AppEnv>) {
  declare(app);
  app.get('/docs', (c) => {
    c.header('Content-Security-Policy', CSP);
    return c.html(PAGE);
  });
  app.get('/docs/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    const res = DOCS_FILES.includes(file) ? await c.get('deps').docsAssets(file) : null;
    if (!res) throw new AppError('NOT_FOUND', 'No such file.');
    // Through the context, so the file carries X-Request-Id and nosniff like every other answer.
    return c.body(res.body as ReadableStream, 200, Object.fromEntries(res.headers));
  });
}
