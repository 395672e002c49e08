// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'docs/api/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/test/**'], message: 'production code must not import tests' }] }],
    },
  },
  // The layering (README, Architecture): src/ is the ground floor and points at nothing above it;
  // patterns/ and adapters/ stand on src/ only; facade/ (DSL, user API, CLI, test kit) stands on all.
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/patterns/**', '**/adapters/**', '**/examples/**', '**/facade/**', '**/test/**'], message: 'src/ is the ground floor: it imports nothing from patterns/, adapters/, examples/ or facade/' },
      ] }],
    },
  },
  {
    files: ['patterns/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/adapters/**', '**/examples/**', '**/facade/**', '**/test/**', '../src/runtime/*', '../src/dsl/*'], message: 'patterns/ stand on src/ (its spi tier) only' },
      ] }],
    },
  },
  {
    files: ['adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/patterns/**', '**/examples/**', '**/facade/**', '**/test/**'], message: 'adapters/ stand on src/ and their client library only' },
      ] }],
    },
  },
);
