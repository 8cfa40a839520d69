"""Run the inventory service: `python -m services.inventory`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.inventory.app import serve
from services.inventory.config import InventorySettings

if __name__ == "__main__":
    settings = load_settings(InventorySettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
