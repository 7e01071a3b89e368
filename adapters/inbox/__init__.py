"""Messages in, from a NATS JetStream stream: registration-office notices (§ 72 AufenthV)
and online applications from the state's portal (docs/guides/notices-and-applications.md).

- :mod:`adapters.inbox.schemas`: the JSON Schemas of every message in and out
  (``schemas/*.json``, modelled on XAusländer) and validation against them;
- :mod:`adapters.inbox.messages`: one delivery, without the broker: bytes to a service
  command (:mod:`service_notices`), the outcome to the answer (a receipt, or a return to
  the sender);
- :mod:`adapters.inbox.consumer`: the durable consumer that fetches, handles, answers,
  and acknowledges only after the command was recorded.
"""
