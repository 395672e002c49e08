// The entry point of a third-party adapter package: its transport, module and CLI declaration.
export { EchoTransport } from './echo-transport.ts';
export { echoModule, environment } from './echo.module.ts';
