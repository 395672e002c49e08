export * from './xmpp-transport.ts';
export * from './xmpp-options.ts';
export * from './xmpp-errors.ts';
export * from './xmpp.module.ts';
export { xmppTarget, type XmppTarget } from './xmpp-endpoint.ts';
export { encodeStanza, decodeStanza, ENVELOPE_NS, type EncodeSettings, type InboundContext, type Decoded } from './xmpp-codec.ts';
export type { XmppBounce, XmppSessionStatus } from './xmpp-session.ts';
export type { XmlElement } from './xmpp-client.ts';
export { environment } from './environment.ts';
