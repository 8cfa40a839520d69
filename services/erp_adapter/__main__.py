"""Run the erp-adapter service: `python -m services.erp_adapter`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.erp_adapter.app import serve
from services.erp_adapter.config import ErpAdapterSettings

if __name__ == "__main__":
    settings = load_settings(ErpAdapterSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
