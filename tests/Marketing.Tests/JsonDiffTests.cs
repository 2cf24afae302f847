using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Xunit;

namespace Marketing.Tests;

/// <summary>The field-level diff behind audit entries and the approvers' queue.</summary>
public sealed class JsonDiffTests
{
    [Fact]
    public void Nested_members_are_compared_field_by_field_and_arrays_as_whole_values()
    {
        var before = JsonNode.Parse("""{"name":"a","terms":{"budget":100,"categories":["x","y"],"validity":{"days":7}},"gone":1}""");
        var after = JsonNode.Parse("""{"name":"a","terms":{"budget":600,"categories":["x","z"],"validity":{"days":7}},"added":true}""");

        var changes = JsonDiff.Of(before, after).ToDictionary(c => c.Path);

        Assert.Equal(["added", "gone", "terms.budget", "terms.categories"], changes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(100, (int)changes["terms.budget"].Before!);
        Assert.Equal(600, (int)changes["terms.budget"].After!);
        Assert.Equal("""["x","z"]""", changes["terms.categories"].After!.ToJsonString());
        Assert.Null(changes["gone"].After);
        Assert.Null(changes["added"].Before);
    }

    [Fact]
    public void Equal_documents_have_no_changes_and_a_created_document_is_one_change_of_the_whole()
    {
        var document = JsonNode.Parse("""{"a":{"b":[1,2]},"c":null}""");
        Assert.Empty(JsonDiff.Of(document, document!.DeepClone()));

        var created = Assert.Single(JsonDiff.Of(null, document));
        Assert.Equal("$", created.Path);
        Assert.Null(created.Before);
    }

    [Fact]
    public void The_number_of_changes_is_bounded()
    {
        var before = new JsonObject();
        var after = new JsonObject();
        for (var i = 0; i < 50; i++) after["f" + i] = i;
        Assert.Equal(10, JsonDiff.Of(before, after, maxChanges: 10).Count);
    }
}
