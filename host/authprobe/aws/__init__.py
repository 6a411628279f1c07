"""AWS's own rules, as AWS documents them: the IoT policy evaluator, the custom authorizer's response
schema, the Lambda resource-policy check and the token signature. Both the checker of a real account
(authprobe.cloud) and the local stand-in (authprobe.emulator) import them; nothing here imports either."""
