import type { Hook } from '@hono/zod-openapi';
import { AppError } from '../domain/errors';
import { TOO_LARGE } from './schemas';

type Issue = { path: PropertyKey[]; message: string; params?: Record<string, unknown> };

/** zod failures become VALIDATION_ERROR with the fields named, or PAYLOAD_TOO_LARGE for size caps. */
export const validationHook: Hook<unknown, any, any, any> = (result) => {
  if (result.success) return;
  const issues = (result.error as { issues: Issue[] }).issues;
  const tooLarge = issues.find((i) => i.params?.reason === TOO_LARGE);
  const fields = issues.slice(0, 10).map((i) => ({ field: i.path.map(String).join('.') || (result.target as string), message: i.message }));
  if (tooLarge) {
    throw new AppError('PAYLOAD_TOO_LARGE', tooLarge.message, { field: tooLarge.path.map(String).join('.'), limit: tooLarge.params?.limit });
  }
  throw new AppError('VALIDATION_ERROR', `Invalid ${String(result.target)}: ${fields[0]?.field} ${fields[0]?.message}`.slice(0, 300), { issues: fields });
};
