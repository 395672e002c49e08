import { checkCompatibility, type Incompatibility } from './compatibility.ts';
import { contractRef } from './contract.ts';
import { lintContract, type LintProblem } from './lint.ts';
import type { SchemaRegistry } from './registry.ts';
import { classifiedFields, type ClassifiedField } from '../security/classification.ts';

export interface CheckReport {
  readonly incompatibilities: readonly Incompatibility[];
  readonly lint: readonly LintProblem[];
  /** Every contract with classified fields (`x-classification`), and those fields: information, never a failure. */
  readonly classified: readonly { readonly contract: string; readonly fields: readonly ClassifiedField[] }[];
  readonly ok: boolean;
}

/**
 * What `interchange schemas check` reports: each version against its predecessor under the
 * subject's compatibility mode, the documentation lint of every contract, and the classified fields
 * of each contract (per contract: where they flow needs the routes, see `trustZoneFlows`).
 */
export function checkRegistry(registry: SchemaRegistry): CheckReport {
  const incompatibilities: Incompatibility[] = [];
  const lint: LintProblem[] = [];
  for (const { subject, compatibility } of registry.subjects()) {
    const versions = registry.versions(subject);
    versions.forEach((version, index) => {
      lint.push(...lintContract(contractRef(subject, version), registry.schema(contractRef(subject, version))));
      const previous = versions[index - 1];
      if (previous === undefined) return;
      incompatibilities.push(...checkCompatibility(subject, compatibility, previous, registry.schema(contractRef(subject, previous)), version, registry.schema(contractRef(subject, version))));
    });
  }
  const classified = registry.contracts().flatMap((contract) => {
    const fields = classifiedFields(registry, contract);
    return fields.length === 0 ? [] : [{ contract, fields }];
  });
  return { incompatibilities, lint, classified, ok: incompatibilities.length === 0 && lint.length === 0 };
}

/** The classified-field lines `schemas check` prints: `classified: order.placed@2 /customer/email personal, /card secret`. */
export function classificationLines(report: CheckReport): string[] {
  return report.classified.map(({ contract, fields }) => `classified: ${contract} ${fields.map((field) => `${field.pointer} ${field.classification}`).join(', ')}`);
}
