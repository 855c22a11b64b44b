// What a model's outputs mean for the page: which labels count as predicted and whether that set
// of labels ever occurred together in training. The rules follow the native `tagnet classify`
// (native/cmd/classify.cpp).
import { listNames } from './dom';
import type { ModelInfo } from './tagnet-types';

export type Head = ModelInfo['head'];

/** "99.95%", as the command line prints probabilities. */
export function percent(p: number): string {
  return `${(p * 100).toFixed(2)}%`;
}

/**
 * Indices of the predicted labels, most probable first: every label above the threshold for a
 * sigmoid (multi-label) head, else the single most probable class.
 */
export function predictedIndices(probs: ArrayLike<number>, head: Head, threshold: number): number[] {
  const order = Array.from({ length: probs.length }, (_, i) => i)
    .sort((a, b) => probs[b] - probs[a] || a - b);
  if (head === 'sigmoid') return order.filter((i) => probs[i] > threshold);
  return order.length ? [order[0]] : [];
}

/** The model's label combinations seen in training, each sorted (metadata "combinations"). */
export function combinationsOf(info: ModelInfo): Set<string> {
  const out = new Set<string>();
  const c = info.metadata?.combinations;
  if (!Array.isArray(c)) return out;
  for (const combo of c) {
    if (Array.isArray(combo) && combo.every((l) => typeof l === 'string')) out.add(comboKey(combo as string[]));
  }
  return out;
}

export function comboKey(labels: readonly string[]): string {
  return JSON.stringify([...labels].sort());
}

/**
 * True when a multi-label prediction is a set of labels that never occurred together in
 * training. Models without recorded combinations, other heads and empty predictions never are.
 */
export function isUnseenCombination(predicted: readonly string[], head: Head, seen: Set<string>): boolean {
  return head === 'sigmoid' && seen.size > 0 && predicted.length > 0 && !seen.has(comboKey(predicted));
}

/** The note on an unseen combination, worded for one label as for several. */
export function unseenNote(predicted: readonly string[]): string {
  const names = [...predicted].sort();
  if (names.length === 1) return `The label ${names[0]} alone never occurred in training.`;
  return `The labels ${listNames(names)} never occurred together in training.`;
}
