// Checks recorded exchanges against the served OpenAPI document: the status is declared for the
// operation, a JSON body matches its schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses), and
// every header the response declares as required is there. The Node target records every answer
// of every API test and checks them when the target closes.
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

export interface Exchange {
  method: string;
  path: string;
  status: number;
  headers: Headers | null;
  body: string | null;
  contentType: string | null;
}

type Json = Record<string, any>;
const DOC_ID = 'https://orbital.invalid/openapi.json';

/** Points `#/components/...` refs into the document registered under DOC_ID. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? DOC_ID + v : rebase(v);
  return out;
}

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  literals: number;
  op: Json;
}

export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: false });
  private readonly ops: Operation[] = [];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly doc: Json) {
    addFormats(this.ajv);
    this.ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
    this.ajv.addFormat('binary', true);
    this.ajv.addSchema({ $id: DOC_ID, $defs: {}, components: rebase(doc.components) } as never);
    for (const [template, item] of Object.entries(doc.paths as Json)) {
      const segments = template.split('/');
      const pattern = new RegExp('^' + segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('/') + '$');
      const literals = segments.filter((s) => s && !s.startsWith('{')).length;
      for (const [method, op] of Object.entries(item as Json)) this.ops.push({ method: method.toUpperCase(), template, pattern, literals, op });
    }
  }

  private resolve(node: Json): Json {
    return typeof node?.$ref === 'string' ? this.resolve(node.$ref.slice(2).split('/').reduce((n: Json, k: string) => n[k], this.doc)) : node;
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let fn = this.compiled.get(key);
    if (!fn) this.compiled.set(key, (fn = this.ajv.compile(rebase(schema) as Json)));
    return fn;
  }

  /** The problems of one exchange; empty when the document describes it. */
  check(x: Exchange): string[] {
    // OPTIONS is CORS preflight, answered by the CORS layer for browsers: not an operation of the API.
    if (x.method === 'OPTIONS') return [];
    const method = x.method === 'HEAD' ? 'GET' : x.method;
    const matching = this.ops.filter((o) => o.pattern.test(x.path));
    const where = `${x.method} ${x.path} → ${x.status}`;
    if (!matching.length) return x.status === 404 ? this.checkBody(where, 'not-found', this.errorResponse(), x) : [`${where}: no path of the document matches`];
    const op = matching.filter((o) => o.method === method).sort((a, b) => b.literals - a.literals)[0];
    if (!op) {
      // The path exists with other methods: every operation declares the 405 it then answers.
      return x.status === 405 ? this.checkResponse(where, `${matching[0]!.method} ${matching[0]!.template}`, matching[0]!.op.responses['405'], x) : [`${where}: the path has no ${method}`];
    }
    const response = op.op.responses[String(x.status)] ?? op.op.responses.default;
    if (!response) return [`${where}: status not declared by ${op.method} ${op.template} (${Object.keys(op.op.responses).join(', ')})`];
    return this.checkResponse(where, `${op.method} ${op.template} ${x.status}`, response, x);
  }

  private errorResponse(): Json {
    return { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }

  private checkResponse(where: string, key: string, declared: Json, x: Exchange): string[] {
    const response = this.resolve(declared);
    const problems: string[] = [];
    if (x.headers) {
      for (const [name, header] of Object.entries((response.headers ?? {}) as Json)) {
        if (this.resolve(header).required && !x.headers.has(name)) problems.push(`${where}: declared header ${name} is missing`);
      }
    }
    return [...problems, ...this.checkBody(where, key, response, x)];
  }

  private checkBody(where: string, key: string, response: Json, x: Exchange): string[] {
    if (x.body === null || x.body === '' || x.method === 'HEAD') return [];
    const json = x.contentType?.includes('application/json');
    const content = response.content as Json | undefined;
    if (!content) return [`${where}: a body (${x.contentType}) where the document declares none`];
    if (!json) return [];
    const media = content['application/json'];
    if (!media) return [`${where}: a JSON body where the document declares ${Object.keys(content).join(', ')}`];
    const validate = this.validator(key, media.schema);
    let body: unknown;
    try {
      body = JSON.parse(x.body);
    } catch {
      return [`${where}: the body is not JSON`];
    }
    if (validate(body)) return [];
    return [`${where}: body breaks the schema: ${this.ajv.errorsText(validate.errors)} — ${x.body.slice(0, 300).replace(/"request_id":"[^"]*"/, '"request_id":…')}`];
  }
}

/** Records what a target answered; `check` runs them past the document the server serves. */
export class ExchangeRecorder {
  readonly exchanges: Exchange[] = [];

  async record(method: string, url: string, res: Response): Promise<void> {
    const contentType = res.headers.get('content-type');
    // Only JSON bodies are read (a copy): files and pages stream to the test untouched.
    const body = contentType?.includes('application/json') ? await res.clone().text() : null;
    this.exchanges.push({ method: method.toUpperCase(), path: new URL(url).pathname, status: res.status, headers: res.headers, body, contentType });
  }

  recordRefusal(path: string, status: number, body: string): void {
    this.exchanges.push({ method: 'GET', path: path.split('?')[0]!, status, headers: null, body, contentType: 'application/json' });
  }

  /** Throws one error listing every exchange the document does not describe. */
  async check(baseUrl: string): Promise<void> {
    if (!this.exchanges.length) return;
    const doc = (await (await fetch(baseUrl + '/openapi.json')).json()) as Json;
    const checker = new OpenApiChecker(doc);
    const problems = [...new Set(this.exchanges.flatMap((x) => checker.check(x)))];
    if (problems.length) throw new Error(`${problems.length} responses differ from /openapi.json:\n` + problems.slice(0, 30).join('\n'));
  }
}
