import { EndpointError } from './errors.ts';
import type { Message } from './message.ts';

const placeholder = /\{([A-Za-z_$][\w$.-]*)\}/g;

/** Whether a string contains `{name}` placeholders. */
export function isTemplate(text: string): boolean {
  return text.includes('{');
}

/**
 * Fills `{name}` placeholders from the message: headers first, then top-level (or dotted) body
 * fields. A placeholder with no value is left as it is, so the endpoint rejects it visibly.
 * @example resolveTemplate('amqp:exchange/telemetry?routingKey=reading.{deviceId}', message)
 */
export function resolveTemplate(template: string, message: Message<unknown>): string {
  return template.replace(placeholder, (whole, name: string) => {
    const header = message.headers[name];
    if (header !== undefined) return encodeURIComponent(String(header));
    let value: unknown = message.body;
    for (const key of name.split('.')) {
      if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return whole;
      value = (value as Record<string, unknown>)[key];
    }
    return value === undefined || value === null || typeof value === 'object' ? whole : encodeURIComponent(String(value));
  });
}

/**
 * `resolveTemplate`, refusing a result that still has a placeholder: throws `EndpointError` naming
 * the missing values, so a message is never sent to an endpoint literally named `{deviceId}`.
 */
export function resolveEndpointTemplate(template: string, message: Message<unknown>): string {
  const uri = resolveTemplate(template, message);
  const missing = [...uri.matchAll(placeholder)].map((match) => match[1]);
  if (missing.length > 0) throw new EndpointError(`'${template}': no header or body field for ${missing.map((name) => `{${name}}`).join(', ')} in message ${message.id}`);
  return uri;
}
