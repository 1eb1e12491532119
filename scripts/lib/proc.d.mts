// Types of proc.mjs (used by the TypeScript tests).
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export function sleep(ms: number): Promise<void>;
/** A binary on PATH, or undefined. */
export function which(name: string): string | undefined;
/** A UDP port free on `host` (with `tcp`, free for TCP as well). */
export function freePort(host?: string, tcp?: boolean): Promise<number>;
/** Sends `message(mid)`; true when a message with the same MID comes back within timeoutMs. */
export function coapExchange(
  host: string,
  port: number,
  message: (mid: number) => Uint8Array,
  timeoutMs: number,
): Promise<boolean>;

/** A spawned, tracked child process. */
export interface Peer {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number | undefined;
  readonly exited: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr for error messages (bounded). */
  output(): string;
  /** Resolves once the process has exited. */
  readonly done: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  kill(graceMs?: number): Promise<void>;
}

/** Sends `signal` (default SIGKILL) to every tracked child still running. */
export function signalAll(signal?: NodeJS.Signals): void;
/** How many tracked children are still running. */
export function liveCount(): number;
/** Spawns a tracked child; output kept up to `outputCap` characters, output() shows `tail`. */
export function spawnTracked(
  name: string,
  cmd: string,
  args: readonly string[],
  opts?: SpawnOptions,
  limits?: { outputCap?: number; tail?: number },
): Peer;
/** Kills every tracked child still running. */
export function killAll(): Promise<void>;
