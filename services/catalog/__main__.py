"""Run the catalog service: `python -m services.catalog`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.catalog.app import serve
from services.catalog.config import CatalogSettings

if __name__ == "__main__":
    settings = load_settings(CatalogSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
