"""Run the shipments service: `python -m services.shipments`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.shipments.app import serve
from services.shipments.config import ShipmentsSettings

if __name__ == "__main__":
    settings = load_settings(ShipmentsSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
