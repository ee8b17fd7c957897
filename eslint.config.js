// @ts-check
import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      'dist-bench/**',
      'web/dist/**',
      'bench/anchors/build/**',
      'tmp/**',
      'src/**/*.plain.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Kernel-style code uses bit arithmetic and numeric template output freely.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/prefer-literal-enum-member': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'require-yield': 'off',
    },
  },
  {
    // node:test's test()/describe() return promises the runner itself awaits.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after'],
            },
          ],
        },
      ],
    },
  },
  {
    // The model runs in the studio's Web Worker too: its layers import nothing Node-only; nor does
    // the policy simulator, which the studio runs there as well.
    files: [
      'src/lib/**/*.ts',
      'src/sched/**/*.ts',
      'src/kernel/**/*.ts',
      'src/oracles/**/*.ts',
      'src/sim/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*'], message: 'the model layers run in a browser too' }] },
      ],
    },
  },
  {
    // ... and use no Node globals: a Buffer call there stops every step in the studio's worker.
    files: [
      'src/lib/**/*.ts',
      'src/sched/**/*.ts',
      'src/kernel/**/*.ts',
      'src/oracles/**/*.ts',
      'src/scenario/**/*.ts',
      'src/conformance/**/*.ts',
      'src/sim/**/*.ts',
    ],
    // Loading driver modules happens in Node only.
    ignores: ['src/scenario/user_module.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['Buffer', 'process', 'require', '__dirname', '__filename', 'global', 'setImmediate'].map(
          (name) => ({ name, message: 'the model and scenario layers run in a browser too' }),
        ),
      ],
    },
  },
  {
    // Event handlers in JSX are arrow shorthands (`onClick={() => void goto(n)}`).
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    rules: {
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: { ...globals.node } },
  },
);
