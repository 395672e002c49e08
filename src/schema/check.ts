import { checkCompatibility, type Incompatibility } from './compatibility.ts';
import { contractRef } from './contract.ts';
import { lintContract, type LintProblem } from './lint.ts';
import type { SchemaRegistry } from './registry.ts';

export interface CheckReport {
  readonly incompatibilities: readonly Incompatibility[];
  readonly lint: readonly LintProblem[];
  readonly ok: boolean;
}

/**
 * What `interchange schemas check` reports: each version against its predecessor under the
 * subject's compatibility mode, and the documentation lint of every contract.
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
  return { incompatibilities, lint, ok: incompatibilities.length === 0 && lint.length === 0 };
}
