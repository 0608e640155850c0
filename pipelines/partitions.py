"""Studies are dynamic partitions: one per study file in the studies folder."""

from dagster import DynamicPartitionsDefinition

study_partitions = DynamicPartitionsDefinition(name="study")
