/**
 * Conversion between plain JS values and the data types of `@actions/expressions`.
 * Kept apart from the evaluator so the conversion rules (undefined becomes null, non-JSON values
 * become strings) live in one place.
 */
import { data } from '@actions/expressions';

type ExpressionData = data.ExpressionData;

/** JS value → expression data. `undefined` and functions become null; Dates become ISO strings. */
export function toExpressionData(value: unknown, depth = 0): ExpressionData {
  // Guard against cyclic objects: GitHub's contexts are trees, so a deep cycle is a caller bug.
  if (depth > 64) return new data.Null();
  if (value === null || value === undefined) return new data.Null();
  switch (typeof value) {
    case 'boolean':
      return new data.BooleanData(value);
    case 'number':
      return new data.NumberData(value);
    case 'bigint':
      return new data.NumberData(Number(value));
    case 'string':
      return new data.StringData(value);
    case 'object': {
      if (value instanceof Date) return new data.StringData(value.toISOString());
      if (Array.isArray(value)) return new data.Array(...value.map((v) => toExpressionData(v, depth + 1)));
      const dict = new data.Dictionary();
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        dict.add(key, toExpressionData(v, depth + 1));
      }
      return dict;
    }
    default:
      return new data.Null();
  }
}

/** Expression data → JS value (null, boolean, number, string, array, plain object). */
export function fromExpressionData(value: ExpressionData | undefined): unknown {
  if (value === undefined) return null;
  switch (value.kind) {
    case data.Kind.Null:
      return null;
    case data.Kind.Boolean:
      return (value as data.BooleanData).value;
    case data.Kind.Number:
      return (value as data.NumberData).number();
    case data.Kind.String:
      return (value as data.StringData).value;
    case data.Kind.Array:
      return (value as data.Array).values().map((v) => fromExpressionData(v));
    case data.Kind.Dictionary: {
      const out: Record<string, unknown> = {};
      for (const { key, value: v } of (value as data.Dictionary).pairs()) out[key] = fromExpressionData(v);
      return out;
    }
    default:
      return null;
  }
}

/** GitHub's truthiness: null, false, 0, NaN and '' are false; arrays and objects are true. */
export function isTruthy(value: ExpressionData): boolean {
  switch (value.kind) {
    case data.Kind.Null:
      return false;
    case data.Kind.Boolean:
      return (value as data.BooleanData).value;
    case data.Kind.Number: {
      const n = (value as data.NumberData).number();
      return !(n === 0 || Number.isNaN(n));
    }
    case data.Kind.String:
      return (value as data.StringData).value.length > 0;
    default:
      return true;
  }
}
