"""Generations domain: paid image generations, their images, progress events, the seed's generate-art."""

from __future__ import annotations

import asyncio

from common.logging import get_logger
from gateway.credits.ledger import Ledger
from gateway.generations.controllers import GenerateArtController, GenerationController, ImageController
from gateway.generations.events import EventHub
from gateway.generations.images import ImageStore, ImageUrlSigner, LocalImageStore
from gateway.generations.inference import GrpcInferenceClient, InferenceClient
from gateway.generations.repository import MIGRATIONS
from gateway.generations.runner import JobRunner
from gateway.generations.services import GenerationService
from gateway.lib.secrets import hmac_secret
from gateway.server.container import Container, HealthResult

__all__ = ["MIGRATIONS", "ROUTES", "install"]

log = get_logger("gateway.generations")
RECOVERY_INTERVAL_S = 2.0  # how soon a surviving replica finishes (or voids) a dead replica's generations


async def install(container: Container) -> None:
    settings, db = container.settings, container.db
    if container.find(InferenceClient) is None:  # type: ignore[type-abstract]
        container.provide(InferenceClient, GrpcInferenceClient(  # type: ignore[type-abstract]
            settings.inference_target, timeout_s=settings.generation_timeout_s, model=settings.inference_model))
    inference = container.get(InferenceClient)  # type: ignore[type-abstract]
    if container.find(ImageStore) is None and settings.image_s3_bucket:  # type: ignore[type-abstract]
        from gateway.generations.s3_images import S3ImageStore

        s3 = S3ImageStore(settings.image_s3_bucket, endpoint_url=settings.image_s3_endpoint_url,
                          region=settings.image_s3_region, prefix=settings.image_s3_prefix,
                          access_key_id=settings.image_s3_access_key_id,
                          secret_access_key=settings.image_s3_secret_access_key)
        container.provide(ImageStore, s3)  # type: ignore[type-abstract]
        container.on_shutdown(s3.close)
    if container.find(ImageStore) is None:  # type: ignore[type-abstract]
        container.provide(ImageStore, LocalImageStore(settings.state_dir / "images"))  # type: ignore[type-abstract]
    if container.find(ImageUrlSigner) is None:
        container.provide(ImageUrlSigner, ImageUrlSigner(hmac_secret(settings, "image_url_secret"),
                                                         base_url=settings.base_url, ttl_s=settings.image_url_ttl_s))
    hub = container.find(EventHub) or container.provide(EventHub, EventHub())
    runner = JobRunner(db, inference, container.get(ImageStore), hub,  # type: ignore[type-abstract]
                       max_concurrent=settings.max_concurrent_generations)
    container.provide(JobRunner, runner)
    service = GenerationService(settings, db, runner, container.get(ImageUrlSigner),
                                lambda: container.get(Ledger))  # type: ignore[type-abstract]
    container.provide(GenerationService, service)

    async def inference_health() -> HealthResult:
        return await inference.health()

    container.add_health_check("inference", inference_health)

    async def stop() -> None:
        await runner.stop()
        await inference.close()

    container.on_shutdown(stop)
    if container.find(Ledger) is not None:  # type: ignore[type-abstract]
        recovered = await service.recover()
        if recovered:
            log.info("generations_recovered", count=recovered)
        if db.dialect != "sqlite":  # replicas: take over what a replica that died left unfinished
            async def recover_periodically() -> None:
                while True:
                    await asyncio.sleep(RECOVERY_INTERVAL_S)
                    try:
                        await db.keep_alive()
                        await service.recover()
                    except Exception:  # the next round tries again
                        log.exception("generations_recovery_failed")

            container.add_background_task("generations-recovery", recover_periodically)
    else:
        log.warning("generations_without_ledger", hint="the credits domain is not installed; card generations fail")


ROUTES = [GenerationController, ImageController, GenerateArtController]
