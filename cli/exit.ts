// Exit codes, so scripts can tell a refusal from an unreachable API from a mistyped command.
export const EXIT = {
  ok: 0,
  /** The API answered with an HTTP error, or a webhook signature does not verify. */
  refused: 1,
  /** No answer: the connection failed or timed out. The request may still have taken effect. */
  unreachable: 2,
  /** A bad command line or missing credentials (sysexits' EX_USAGE). */
  usage: 64,
} as const;

/** A message for the user, without a stack trace, and the code to exit with. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}
