/** DI tokens of the core. Each shares its name with the interface it stands for (Theia style). */
export { Transport } from '../core/transport.ts';
export { Logger } from '../core/logger.ts';

/** The RxJS scheduler every time-based step uses (bind a TestScheduler/VirtualTimeScheduler in tests). */
export const Scheduler: unique symbol = Symbol.for('interchange.Scheduler');
