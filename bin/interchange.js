#!/usr/bin/env node
// The `interchange` command: registers tsx so route files (and Interchange itself) run as TypeScript.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../facade/cli/main.ts');
process.exit(await main(process.argv.slice(2)));
