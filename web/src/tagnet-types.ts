// The WebAssembly module's types (wasm/tagnet.d.ts). The page loads the module itself at run
// time from wasm/ beside the page, so only its types are imported here.
export type {
  AugmentOptions, LayerInfo, Model, ModelInfo, Tagnet, TeachProgress, TeachReport, Trainer, TrainablePart, TrainerOptions,
  Variant,
} from '../../wasm/tagnet.js';
