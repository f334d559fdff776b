// Entry-point plumbing shared by the processes: start, then stop cleanly on SIGINT/SIGTERM.
import type { Logger } from 'pino';
import { ConfigError } from './environment.js';

/** Runs `start`; on a signal calls the stop function it returned, then exits. */
export async function runUntilSignalled(logger: Logger, start: () => Promise<() => Promise<void>>): Promise<void> {
  let stop: () => Promise<void>;
  try {
    stop = await start();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
    } else {
      logger.fatal({ err }, 'failed to start');
    }
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'stopped with an error');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Started by `npm start`: tell it we serve, and stop with it if it goes away without a word.
  if (process.send) {
    process.send({ ready: true });
    process.once('disconnect', () => onSignal('SIGTERM'));
  }
}
