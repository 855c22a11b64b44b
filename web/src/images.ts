// Pictures from files, the clipboard and the camera, as RGBA pixels for the engine.
import type { RgbaImage } from './protocol';

/** A file that could not be used as a picture; the message names it and says why. */
export class NotAnImageError extends Error {
  constructor(name: string, reason = 'not a picture') {
    super(`${name}: ${reason}`);
    this.name = 'NotAnImageError';
  }
}

// How files of the formats browsers decode begin, to tell a damaged picture from a file that
// is no picture at all.
const SIGNATURES: { format: string; at: number; bytes: number[] }[] = [
  { format: 'JPEG', at: 0, bytes: [0xff, 0xd8, 0xff] },
  { format: 'PNG', at: 0, bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { format: 'GIF', at: 0, bytes: [0x47, 0x49, 0x46, 0x38] },
  { format: 'WebP', at: 8, bytes: [0x57, 0x45, 0x42, 0x50] },
];

/** True when the bytes start like a tagnet model file ("TAGNET\0\0"). */
export function looksLikeModel(bytes: Uint8Array): boolean {
  const magic = [0x54, 0x41, 0x47, 0x4e, 0x45, 0x54, 0, 0];
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** The picture format the first bytes of a file announce, or null. */
export function announcedFormat(head: Uint8Array): string | null {
  const match = SIGNATURES.find((s) => s.bytes.every((b, i) => head[s.at + i] === b));
  return match?.format ?? null;
}

/** Why a file the browser could not decode is no picture. */
async function undecodable(file: Blob, name: string): Promise<NotAnImageError> {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const format = announcedFormat(head);
  if (format) return new NotAnImageError(name, `damaged ${format} (it starts like a ${format} picture but does not decode)`);
  if (looksLikeModel(head)) return new NotAnImageError(name, 'not a picture (it is a tagnet model: open it with "Open model file")');
  return new NotAnImageError(name, 'not a picture');
}

export interface Picture extends RgbaImage {
  rgba: Uint8ClampedArray;
  name: string;
  /** The pixels as a PNG, for thumbnails and for keeping in IndexedDB. */
  blob: Blob;
}

// Larger pictures are shrunk before they reach the engine: the networks see 64-150 pixels,
// and the engine would otherwise copy megabytes per picture. Augmentation's zoom and shifts
// need little more than the network's input.
export const MAX_SIDE = 256;

function fitWithin(width: number, height: number, maxSide: number): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/** The pixels of `source` shrunk to fit `maxSide`, on a canvas that can also encode them. */
function draw(source: CanvasImageSource, width: number, height: number, name: string, maxSide: number):
    { canvas: OffscreenCanvas; data: ImageData } {
  const [w, h] = fitWithin(width, height, maxSide);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new NotAnImageError(name, 'cannot draw the picture');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, w, h);
  return { canvas, data: ctx.getImageData(0, 0, w, h) };
}

async function fromSource(source: CanvasImageSource, width: number, height: number, name: string,
                          maxSide: number): Promise<Picture> {
  const { canvas, data } = draw(source, width, height, name, maxSide);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  return { rgba: data.data, width: data.width, height: data.height, name, blob };
}

/** Decodes an image file (any format the browser reads); throws NotAnImageError otherwise. */
export async function decodePicture(file: Blob, name: string, maxSide = MAX_SIDE): Promise<Picture> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw await undecodable(file, name);
  }
  try {
    return await fromSource(bitmap, bitmap.width, bitmap.height, name, maxSide);
  } finally {
    bitmap.close();
  }
}

function needFrame(video: HTMLVideoElement, name: string): void {
  if (!video.videoWidth || !video.videoHeight) throw new NotAnImageError(name, 'the camera has no picture yet');
}

/** The current frame of a playing video. */
export function captureFrame(video: HTMLVideoElement, name: string, maxSide = MAX_SIDE): Promise<Picture> {
  needFrame(video, name);
  return fromSource(video, video.videoWidth, video.videoHeight, name, maxSide);
}

/** The current frame's pixels only, small: enough for the networks, quick enough to do many times a second. */
export function framePixels(video: HTMLVideoElement, maxSide = 160): RgbaImage {
  needFrame(video, 'camera');
  const { data } = draw(video, video.videoWidth, video.videoHeight, 'camera', maxSide);
  return { rgba: data.data, width: data.width, height: data.height };
}

/** Files from a drop or a paste, pictures and others alike (errors are reported per file). */
export function filesOf(data: DataTransfer | null): File[] {
  if (!data) return [];
  if (data.files && data.files.length) return [...data.files];
  const out: File[] = [];
  for (const item of data.items ?? []) {
    if (item.kind !== 'file') continue;
    const f = item.getAsFile();
    if (f) out.push(f);
  }
  return out;
}

/** Why the page cannot use a camera here, or null when it can ask for one. */
export function cameraMissing(): string | null {
  if (typeof navigator.mediaDevices?.getUserMedia === 'function') return null;
  return window.isSecureContext ? 'this browser gives pages no camera access'
    : 'cameras need a secure page (https, or this computer\'s own address)';
}

/** Without camera access a camera button says why and does nothing. */
export function cameraButtonState(button: HTMLButtonElement): void {
  const missing = cameraMissing();
  button.disabled = missing !== null;
  button.title = missing ? `No camera: ${missing}` : '';
}

/** The webcam: start(video) asks for it (once) and shows it in `video`; stop() releases it. */
export class Camera {
  private stream: MediaStream | null = null;
  private shown: HTMLVideoElement | null = null;

  /** The video element the camera shows in, while it runs. */
  get video(): HTMLVideoElement | null {
    return this.stream ? this.shown : null;
  }

  async start(video: HTMLVideoElement): Promise<void> {
    const missing = cameraMissing();
    if (missing) throw new Error(missing);
    this.stream ??= await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    if (this.shown && this.shown !== video) this.shown.srcObject = null;
    this.shown = video;
    video.srcObject = this.stream;
    await video.play();
  }

  stop(): void {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    if (this.shown) this.shown.srcObject = null;
    this.shown = null;
  }
}
