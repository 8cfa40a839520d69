"""Run the returns service: `python -m services.returns`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.returns.app import serve
from services.returns.config import ReturnsSettings

if __name__ == "__main__":
    settings = load_settings(ReturnsSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
