"""The transactional outbox: events of chosen kinds, as CloudEvents, to a NATS JetStream
stream, at least once and in log order (docs/guides/outbox.md).

- :mod:`adapters.outbox.cloudevents`: which events are published (the allow-list) and
  how one becomes a CloudEvents 1.0 message, without its personal fields;
- :mod:`adapters.outbox.offices`: the office each event is published under, the one
  its aggregate belongs to;
- :mod:`adapters.outbox.position`: how far the log has been published, in a table of the
  events database;
- :mod:`adapters.outbox.publisher`: follows the log, publishes, waits for the broker's
  acknowledgements, and only then moves the position;
- :mod:`adapters.outbox.asyncapi`: the AsyncAPI document of the channels and messages,
  generated from the allow-list and the event classes.
"""
