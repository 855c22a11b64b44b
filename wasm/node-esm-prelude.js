// Prepended to the Emscripten ES modules. Emscripten 3.1 emits CommonJS names (require,
// __dirname) in its Node code paths even for ES module output; under Node they are defined
// here from import.meta.url. Browsers skip both imports.
const tagnetOnNode = typeof process == 'object' && typeof process.versions == 'object' &&
                     typeof process.versions.node == 'string';
const require = tagnetOnNode ? (await import('module')).createRequire(import.meta.url) : undefined;
const __dirname = tagnetOnNode ? require('path').dirname(require('url').fileURLToPath(import.meta.url)) : '';
