"""Recipes: typed, validated YAML (docs/recipes.md). Torch-free."""

from cascade.config.loading import apply_overrides, load_recipe, packaged_recipe_names
from cascade.config.plan import StagePlan
from cascade.config.recipe import (
    BASE,
    STAGE_KINDS,
    DataSource,
    EvalSet,
    GRPOStage,
    InitBaseModel,
    InitSpec,
    Recipe,
    RMStage,
    SFTStage,
    Stage,
    SubStage,
)

__all__ = [
    "BASE",
    "STAGE_KINDS",
    "DataSource",
    "EvalSet",
    "GRPOStage",
    "InitBaseModel",
    "InitSpec",
    "RMStage",
    "Recipe",
    "SFTStage",
    "Stage",
    "StagePlan",
    "SubStage",
    "apply_overrides",
    "load_recipe",
    "packaged_recipe_names",
]
