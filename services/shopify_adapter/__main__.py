"""Run the shopify-adapter service: `python -m services.shopify_adapter`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.shopify_adapter.app import serve
from services.shopify_adapter.config import ShopifyAdapterSettings

if __name__ == "__main__":
    settings = load_settings(ShopifyAdapterSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
