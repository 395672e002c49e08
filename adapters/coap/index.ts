export * from './coap-transport.ts';
export * from './coap.module.ts';
export * from './coap-options.ts';
export * from './coap-errors.ts';
export { PathPattern, resolveCoapTarget, type CoapTarget, type LocalTarget, type RemoteTarget } from './coap-endpoint.ts';
export { decodeRequest, encodeRequest, HEADERS_OPTION, ID_OPTION, MAX_REQUEST_BYTES, PATH_HEADER, PEER_HEADER, type EncodedRequest, type InboundPolicy, type InboundRequest } from './coap-codec.ts';
export { Block1Uploads, encodeReply, readHead, type DatagramHead, type Reply, type UploadLimits } from './coap-screen.ts';
export { environment } from './environment.ts';
