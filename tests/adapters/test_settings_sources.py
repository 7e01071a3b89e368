"""Reading the settings so that mistakes show: unknown variables with the closest name,
secrets from files, absolute paths, every invalid value at once, never a value quoted."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.bootstrap import InvalidSettings, deployment_problems, settings_from_environment
from adapters.settings import Settings
from adapters.settings_sources import known_variables, read_settings, secret_fields


def test_a_mistyped_variable_is_refused_with_the_closest_name(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKTE_DATADIR", "/srv/akte")
    monkeypatch.setenv("AKTE_PAYMENT_SHARED_SECRT", "never-quoted-value")

    with pytest.raises(InvalidSettings) as refused:
        settings_from_environment()

    message = str(refused.value)
    assert "2 problems" in message  # both in one message
    assert "AKTE_DATADIR (in the environment) is not a setting; did you mean AKTE_DATA_DIR?" in (
        message
    )
    assert "did you mean AKTE_PAYMENT_SHARED_SECRET?" in message
    assert "never-quoted-value" not in message


def test_a_mistyped_variable_in_the_dotenv_file_is_refused_too(environment: Path) -> None:
    (environment / ".env").write_text("AKTE_STORRE=postgres\nOTHER_TOOL=1\n", encoding="utf-8")

    reading = read_settings()

    (problem,) = reading.problems
    assert str(environment / ".env") in problem
    assert "did you mean AKTE_STORE?" in problem


def test_the_tooling_variables_of_akte_itself_are_accepted(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AKTE_ROOT", "AKTE_TEST_WORKERS", "AKTE_TEST_POSTGRES_HOST", "AKTE_CHROMIUM"):
        monkeypatch.setenv(name, "x")

    assert read_settings().problems == ()


def test_a_relative_path_is_resolved_to_an_absolute_one(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", "var")
    monkeypatch.setenv("AKTE_STAFF_FILE", "conf/staff.json")

    settings = settings_from_environment()

    assert settings.data_dir == environment / "var"
    assert settings.staff_file == environment / "conf" / "staff.json"
    assert settings.local_issuer_key_file.is_absolute()


def test_every_invalid_value_is_listed_at_once_by_name(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_PORT", "five-four-three-two")
    monkeypatch.setenv("AKTE_STORE", "s3cret-bucket")

    with pytest.raises(InvalidSettings) as refused:
        settings_from_environment()

    message = str(refused.value)
    assert "AKTE_POSTGRES_PORT" in message
    assert "AKTE_STORE" in message
    assert "five-four-three-two" not in message
    assert "s3cret" not in message


def test_a_secret_is_read_from_its_file(environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = environment / "payment.key"
    secret.write_text("k" * 40 + "\n", encoding="utf-8")  # as `echo` writes it
    monkeypatch.setenv("AKTE_PAYMENT_SHARED_SECRET_FILE", str(secret))

    settings = settings_from_environment()

    assert settings.payment_shared_secret is not None
    assert settings.payment_shared_secret.get_secret_value() == "k" * 40


def test_every_secret_setting_has_a_file_variable() -> None:
    assert set(secret_fields()) == {
        "postgres_password",
        "payment_shared_secret",
        "smtp_password",
        "appointment_secret",
        "master_keys",
        "metrics_token",
    }
    for name in secret_fields():
        assert f"AKTE_{name.upper()}_FILE" in known_variables()


def test_a_missing_secret_file_and_a_secret_set_twice_are_problems(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKTE_MASTER_KEYS_FILE", str(environment / "missing.key"))
    monkeypatch.setenv("AKTE_SMTP_PASSWORD", "inline")
    monkeypatch.setenv("AKTE_SMTP_PASSWORD_FILE", str(environment / "smtp.key"))

    problems = read_settings().problems

    assert any(
        problem.startswith("AKTE_MASTER_KEYS_FILE: cannot read") and "missing.key" in problem
        for problem in problems
    )
    assert "AKTE_SMTP_PASSWORD and AKTE_SMTP_PASSWORD_FILE are both set; set one" in problems
    assert all("inline" not in problem for problem in problems)


def test_missing_secrets_are_found_at_start_not_at_the_first_request(tmp_path: Path) -> None:
    production = Settings(
        deployment="production",
        auth_mode="oidc",
        oidc_issuer="https://id.example/realms/abh",
        oidc_audience="akte",
        oidc_jwks_url="https://id.example/realms/abh/certs",
        data_dir=tmp_path,
        staff_file=tmp_path / "no-such-staff.json",
    )

    problems = deployment_problems(production)

    assert any("AKTE_MASTER_KEYS" in problem for problem in problems)
    assert any(problem.startswith("AKTE_STAFF_FILE: no file at") for problem in problems)
    # Unset secrets switch payments and booking off; that is no mistake.
    assert not any(problem.startswith(("payments:", "appointments:")) for problem in problems)


def test_secrets_that_are_set_but_unusable_are_found_at_start(tmp_path: Path) -> None:
    production = Settings(
        deployment="production",
        auth_mode="oidc",
        oidc_issuer="https://id.example/realms/abh",
        oidc_audience="akte",
        oidc_jwks_url="https://id.example/realms/abh/certs",
        data_dir=tmp_path,
        master_keys=SecretStr("k1:" + "A" * 43 + "="),
        payment_shared_secret=SecretStr("too-short"),
        appointment_secret=SecretStr("too-short"),
    )

    problems = deployment_problems(production)

    assert any(problem.startswith("payments: AKTE_PAYMENT_SHARED_SECRET") for problem in problems)
    assert any(problem.startswith("appointments: AKTE_APPOINTMENT_SECRET") for problem in problems)


def test_online_booking_in_production_needs_the_public_address_for_its_mail_links(
    tmp_path: Path,
) -> None:
    booking_without_address = Settings(
        deployment="production",
        auth_mode="oidc",
        oidc_issuer="https://id.example/realms/abh",
        oidc_audience="akte",
        oidc_jwks_url="https://id.example/realms/abh/certs",
        data_dir=tmp_path,
        master_keys=SecretStr("k1:" + "A" * 43 + "="),
        appointment_secret=SecretStr("a" * 40),
    )

    problems = deployment_problems(booking_without_address)
    with_address = deployment_problems(
        booking_without_address.model_copy(update={"public_base_url": "https://akte.example"})
    )

    assert any(problem.startswith("appointments: AKTE_PUBLIC_BASE_URL") for problem in problems)
    assert not any("AKTE_PUBLIC_BASE_URL" in problem for problem in with_address)


def test_a_complete_production_configuration_has_no_problems(tmp_path: Path) -> None:
    production = Settings(
        deployment="production",
        auth_mode="oidc",
        oidc_issuer="https://id.example/realms/abh",
        oidc_audience="akte",
        oidc_jwks_url="https://id.example/realms/abh/certs",
        data_dir=tmp_path,
        master_keys=SecretStr("k1:" + "A" * 43 + "="),
        payment_shared_secret=SecretStr("p" * 40),
        payment_provider_url="https://pay.example",
        public_base_url="https://akte.example",
        appointment_secret=SecretStr("a" * 40),
    )

    assert deployment_problems(production) == []
