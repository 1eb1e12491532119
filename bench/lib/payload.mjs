// The response body of the benchmark handlers: a small text payload of the size libcoap's
// /time answers with ("Nov 25 17:50:31", 15 bytes), so every server sends similar datagrams.
export const PAYLOAD = 'Hello, CoAP! :)';
