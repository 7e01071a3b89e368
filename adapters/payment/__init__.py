"""ePayment: paying the fees the office charges, through a public ePayment platform.

German public ePayment platforms (ePayBL, pmPayment, ...) share one shape, which these
modules follow:

* the office creates a payment over HTTP (amount in cents, currency, its payment
  reference, where to notify and where to send the payer back) and gets a transaction id
  and a redirect URL, the platform's page where the payer pays
  (:mod:`adapters.payment.provider`);
* later the platform POSTs the result to our notification URL, the raw body signed with
  HMAC-SHA256 under a key shared with the office (:mod:`adapters.payment.signatures`);
  ``POST /payments/notifications`` (:mod:`adapters.http.routes.payments`) checks it;
* :mod:`adapters.payment.stand_in` is a local stand-in platform (a real HTTP server on
  127.0.0.1) for tests and demos without the internet;
* :mod:`adapters.payment.setup`: the set-up and the rules for the settings;
  :func:`adapters.bootstrap.payments_for` builds it.
"""
