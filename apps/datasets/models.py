"""Dataset and its rows, in the tenant's schema: rows are JSONB so any flat shape uploads."""

from django.db import models


class ColumnType(models.TextChoices):
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    NULL = "null"  # every value seen so far is null


class Dataset(models.Model):
    """`columns` is `[{"name", "type", "nullable"}]`, inferred from every row at upload; queries read
    it to validate field names and to choose how a field's values compare (as numbers, text or booleans)."""

    id = models.CharField(primary_key=True, max_length=40)
    name = models.CharField(max_length=63)
    description = models.TextField(blank=True)
    columns = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="dataset_name_unique")]

    def __str__(self) -> str:
        return self.name


class DatasetRow(models.Model):
    # The (dataset, position) unique index serves every read: rows of one dataset, in upload order.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rows", db_index=False)
    position = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "position"], name="dataset_row_position")]

    def __str__(self) -> str:
        return f"row {self.position} of {self.dataset_id}"
