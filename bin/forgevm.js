#!/usr/bin/env node
// forgevm runs straight from its TypeScript sources through tsx's loader: one artifact,
// no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
