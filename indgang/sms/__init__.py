"""The SMS channel through Twilio: inbound keywords and numbered choices (`channel`), replies
composed for SMS in GSM-7 with known segments (`compose`), and outbound SMS through Twilio's
REST API with STOP, throttling, retries and delivery states (`sender`, `delivery`).

Staff replies and later messages reach SMS through `indgang.outbound.deliver_to_citizen`.
"""
