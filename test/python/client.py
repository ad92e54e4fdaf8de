"""A Python client generated from proto/ with grpc_tools: what a third-party developer writes.

Usage: client.py GEN_DIR TARGET TOKEN NEW_NAME
Prints one JSON object with what it saw, for the Node test to check.
"""
import json
import sys

gen_dir, target, token, new_name = sys.argv[1:5]
sys.path.insert(0, gen_dir)

import grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402
from lanrage.v1 import settings_pb2, settings_pb2_grpc, watch_pb2, watch_pb2_grpc  # noqa: E402

out = {}
with grpc.insecure_channel(target) as channel:
    settings = settings_pb2_grpc.SettingsServiceStub(channel)
    out["before"] = settings.GetSettings(settings_pb2.GetSettingsRequest(), timeout=5).settings.device_name

    try:
        settings.UpdateSettings(
            settings_pb2.UpdateSettingsRequest(
                settings=settings_pb2.Settings(device_name=new_name),
                update_mask=field_mask_pb2.FieldMask(paths=["device_name"]),
            ),
            timeout=5,
        )
        out["without_token"] = "OK"
    except grpc.RpcError as e:
        out["without_token"] = e.code().name

    res = settings.UpdateSettings(
        settings_pb2.UpdateSettingsRequest(
            settings=settings_pb2.Settings(device_name=new_name),
            update_mask=field_mask_pb2.FieldMask(paths=["device_name"]),
        ),
        metadata=(("authorization", "Bearer " + token),),
        timeout=5,
    )
    out["after"] = res.settings.device_name

    watch = watch_pb2_grpc.WatchServiceStub(channel)
    kinds = []
    stream = watch.Watch(watch_pb2.WatchRequest(max_duration_seconds=10), timeout=15)
    for msg in stream:
        kinds.append(msg.WhichOneof("event"))
        if kinds.count("metrics") >= 3:
            stream.cancel()
            break
    out["watch"] = kinds

print(json.dumps(out))
