"""Typed specs of course content files (`course.yaml`, `module.yaml`, `quiz.yaml`).

docs/authoring.md documents every field; keep the two in step.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Course, module and lab slugs (labs.lab_spec reuses it: labs sit above courses).
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirement(_Strict):
    lab: str = Field(pattern=SLUG)
    pass_mark: float | None = Field(None, ge=0, le=100)


class CertificateSpec(_Strict):
    title: str = Field(min_length=1, max_length=200)
    requirements: list[Requirement] = Field(min_length=1)


class CourseSpec(_Strict):
    slug: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1)
    description: str | None = None
    estimated_hours: float = Field(gt=0)
    published: bool = False
    order: int = 0
    modules: list[str] = Field(min_length=1)
    data_manifest: str | None = None
    certificate: CertificateSpec | None = None
    # Slugs of courses a learner should finish first; the importer checks that each
    # exists and that they form no cycle.
    prerequisites: list[Annotated[str, Field(pattern=SLUG)]] = []

    @model_validator(mode="after")
    def _unique_modules(self) -> CourseSpec:
        if len(set(self.modules)) != len(self.modules):
            raise ValueError("modules lists a folder twice")
        if len(set(self.prerequisites)) != len(self.prerequisites):
            raise ValueError("prerequisites lists a course twice")
        if self.slug in self.prerequisites:
            raise ValueError("a course cannot be its own prerequisite")
        return self


class LessonRef(_Strict):
    slug: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    file: str
    minutes: int = Field(10, ge=1, le=600)


class ModuleSpec(_Strict):
    slug: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    summary: str = ""
    estimated_hours: float = Field(1, ge=0)
    lessons: list[LessonRef] = []
    quiz: str | None = None
    lab: str | None = Field(None, pattern=SLUG)

    @model_validator(mode="after")
    def _unique_lessons(self) -> ModuleSpec:
        slugs = [lesson.slug for lesson in self.lessons]
        if len(set(slugs)) != len(slugs):
            raise ValueError("lesson slugs must be unique within the module")
        return self


class QuestionSpec(_Strict):
    id: str = Field(pattern=SLUG)
    prompt: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2, max_length=6)
    answer: int = Field(ge=0)
    explanation: str = ""

    @model_validator(mode="after")
    def _answer_in_range(self) -> QuestionSpec:
        if self.answer >= len(self.choices):
            raise ValueError(
                f"answer {self.answer} is not a valid index: there are {len(self.choices)} choices "
                f"(0 to {len(self.choices) - 1})"
            )
        return self


class QuizSpec(_Strict):
    pass_mark: float = Field(75, ge=0, le=100)
    questions: list[QuestionSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> QuizSpec:
        ids = [question.id for question in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique within the quiz")
        return self
