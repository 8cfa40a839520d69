"""Run the ops service: `python -m services.ops`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.ops.app import serve
from services.ops.config import OpsSettings

if __name__ == "__main__":
    settings = load_settings(OpsSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
