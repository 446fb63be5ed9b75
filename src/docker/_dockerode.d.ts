// Local types for the slice of npm dockerode that engine.ts uses. @types/dockerode pulls in
// @types/node, whose globals clash with Deno's node types (node:sqlite, timers) program-wide.
export interface DockerOptions {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: "http" | "https";
  timeout?: number;
}
export interface DockerClient {
  modem: { connectionTimeout?: number };
  listContainers(opts: { all: boolean }): Promise<{ Id: string }[]>;
  getContainer(id: string): { inspect(): Promise<unknown> };
  getEvents(opts: { filters: Record<string, string[]> }): Promise<unknown>;
}
declare const Docker: new (opts: DockerOptions) => DockerClient;
export default Docker;
