import { contractRef } from './contract.ts';
import { visitProperties } from './lint.ts';
import type { SchemaRegistry } from './registry.ts';
import { CLASSIFICATION_KEYWORD, classifiedFields } from '../security/classification.ts';

const constraintKeywords = ['format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'default'] as const;

/**
 * The Markdown catalogue `interchange schemas docs` prints: every subject (mode, description), every
 * version, and a table of its fields with type, whether required, unit, classification (`x-classification`,
 * also when a `$ref` brings it; the column only for contracts that classify a field), constraints and description.
 */
export function contractsMarkdown(registry: SchemaRegistry): string {
  const lines: string[] = ['# Message contracts', '', '| subject | versions | compatibility | description |', '|---|---|---|---|'];
  for (const info of registry.subjects()) {
    lines.push(`| [${info.subject}](#${anchor(info.subject)}) | ${registry.versions(info.subject).join(', ')} | ${info.compatibility} | ${cell(info.description ?? '')} |`);
  }
  for (const info of registry.subjects()) {
    lines.push('', `## ${info.subject}`, '');
    if (info.description !== undefined) lines.push(info.description, '');
    lines.push(`Compatibility: **${info.compatibility}** (each version is checked against the previous one).`);
    for (const version of [...registry.versions(info.subject)].reverse()) {
      const ref = contractRef(info.subject, version);
      const schema = registry.schema(ref);
      lines.push('', `### ${ref}${typeof schema.title === 'string' ? ` — ${schema.title}` : ''}`, '');
      if (typeof schema.description === 'string') lines.push(schema.description, '');
      lines.push(`\`$id\`: \`${String(schema.$id)}\`${schema.additionalProperties === false ? ' · no other fields allowed' : ''}`, '');
      const classified = new Map(classifiedFields(registry, ref).map((field) => [field.pointer, field.classification] as const));
      // the classification column only for contracts that classify something (the others keep their table)
      const withClass = classified.size > 0 || JSON.stringify(schema).includes(`"${CLASSIFICATION_KEYWORD}"`);
      lines.push(withClass ? '| field | type | required | unit | classification | constraints | description |' : '| field | type | required | unit | constraints | description |', withClass ? '|---|---|---|---|---|---|---|' : '|---|---|---|---|---|---|');
      visitProperties(schema, '', (field, property, parent, name) => {
        const required = Array.isArray(parent.required) && parent.required.includes(name);
        const constraints = constraintKeywords.filter((keyword) => keyword in property).map((keyword) => `${keyword} ${JSON.stringify(property[keyword])}`);
        if (Array.isArray(property.enum)) constraints.unshift(`one of ${property.enum.map((value) => JSON.stringify(value)).join(', ')}`);
        const classification = typeof property[CLASSIFICATION_KEYWORD] === 'string' ? String(property[CLASSIFICATION_KEYWORD]) : (classified.get(`/${field.replaceAll('[]', '/*').replaceAll('.', '/')}`) ?? '');
        lines.push(`| \`${field}\` | ${typeName(property)} | ${required ? 'yes' : 'no'} | ${cell(String(property.unit ?? ''))} |${withClass ? ` ${classification} |` : ''} ${cell(constraints.join(', '))} | ${cell(String(property.description ?? ''))} |`);
      });
    }
  }
  return `${lines.join('\n')}\n`;
}

function typeName(property: Record<string, unknown>): string {
  if (Array.isArray(property.type)) return property.type.join(' \\| ');
  if (typeof property.type === 'string') return property.type === 'array' && typeof (property.items as { type?: unknown } | undefined)?.type === 'string' ? `${String((property.items as { type: string }).type)}[]` : property.type;
  if (Array.isArray(property.enum)) return 'enum';
  if (typeof property.$ref === 'string') return `see \`${property.$ref}\``;
  return 'any';
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function anchor(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9 -]/g, '').replaceAll(' ', '-');
}
