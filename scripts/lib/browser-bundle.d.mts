export declare const BROWSER_SUBSTITUTES: Record<string, string>;
export declare function isNodeBuiltin(spec: string): boolean;
export declare function noNodeBuiltinsPlugin(base?: string): { name: string; setup(build: unknown): void };
